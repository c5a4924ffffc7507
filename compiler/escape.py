"""Recipe values written into line-oriented formats: one function per format, each keeping a value on
the one line (or in the one word) it was given, whatever characters it holds.

A value ends its line in more ways than "\\n": bash ends a comment at \\n; sbatch reads a directive up
to \\n, an unquoted '#' or blank; GitHub's runner splits workflow commands at \\r and \\n; Python's
str.splitlines (and so Jinja's `indent`, and many readers) also at \\v, \\f, \\x1c-\\x1e, \\x85, U+2028
and U+2029. Values that must never hold these are refused at validation (model.py's OneLine); these
functions are the second wall, and the only place each format's escaping is written down.

- bash_word: a literal bash word (shlex.quote, or $'...' with octal escapes for control characters
  and Unicode line breaks, so that no line of a script holds a line break of any kind).
- bash_comment: text after "# " (visible escapes: the comment is for a reader).
- sbatch_value: the value of an `#SBATCH --key=value` directive (sbatch's own quoting).
- finding_text: one line of `recipec lint` text output.
- github_data / github_property: a workflow command's message / its file=, title= values, escaped
  as GitHub documents (and its toolkit's escapeData/escapeProperty do).
"""

from __future__ import annotations

import re
import shlex

# Every character at which some reader of a line-oriented format ends the line, plus what a terminal
# acts on (ESC) and what reorders a line as displayed (bidirectional overrides, "Trojan Source").
# Lone surrogates cannot be written as UTF-8 at all.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# What bash's $'...' must carry escaped: controls and Unicode line breaks (a word's bytes otherwise).
_WORD_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# sbatch's directive parser: backslash escapes the next byte; quotes group; '#' starts a comment;
# blanks end the argument.
_SBATCH_SPECIAL = re.compile(r"""([\\'"#\s])""")


def _visible(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xff else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """text with every character of _UNSAFE written as a visible escape (\\x0a, \\u2028)."""
    return _UNSAFE.sub(lambda m: _visible(m.group()), text) if _UNSAFE.search(text) else text


def bash_word(text: str) -> str:
    """A literal for bash, on one line: single quotes, or $'...' when it holds control characters or
    Unicode line breaks, written as octal escapes of their UTF-8 bytes (locale-independent, unlike
    bash's \\u). NUL cannot be in a word: the loader refuses it."""
    if not _WORD_UNSAFE.search(text):
        return shlex.quote(text)
    if "\0" in text:
        raise ValueError(f"a NUL character cannot be passed in a bash word: {text!r}")
    out = []
    for ch in text:
        if ch in "\\'":
            out.append("\\" + ch)
        elif _WORD_UNSAFE.match(ch):
            out.append("".join(f"\\{b:03o}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def bash_comment(text: str) -> str:
    """Text for after `# ` in a script: a line break in it would end the comment and start a command."""
    return one_line(text)


def sbatch_value(text: str) -> str:
    """The value of an #SBATCH directive, as sbatch reads it back: quotes, '#', blanks and
    backslashes escaped with a backslash. Line breaks cannot be escaped there at all (sbatch and
    bash both end the line): validation refuses them, and here they are a bug."""
    if _UNSAFE.search(text):
        raise ValueError(f"an #SBATCH value must be one line of printable text: {text!r}")
    return _SBATCH_SPECIAL.sub(r"\\\1", text)


def finding_text(text: str) -> str:
    """One finding as one line of text output. A line that starts with '::' would be a workflow
    command to a GitHub runner reading the log (a file named '::add-mask::x.yaml'): such a line starts
    with './' instead, the same relative path."""
    line = one_line(text)
    return "./" + line if line.startswith("::") else line


def github_data(text: str) -> str:
    """A workflow command's message: '%', CR and LF percent-encoded as GitHub documents (the runner
    decodes them); other line breaks and controls as visible escapes, so no line of ours holds one."""
    return one_line(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def github_property(text: str) -> str:
    """A workflow command's property value (file=, title=): as data, and ':' and ',' too, which
    would otherwise end the value."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")
