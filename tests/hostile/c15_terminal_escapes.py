"""Class 15: raw terminal control sequences in output, the exception message and the program
itself (a comment), all of which the failure report shows. Raw ESC in this comment: ->[5m]2;x<-

task: HumanEval/1
"""
from typing import List


def separate_paren_groups(paren_string: str) -> List[str]:
    """ Input to this function is a string containing multiple groups of nested parentheses.
    """
    import sys
    clear, title, bell = "\x1b[2J\x1b[H", "\x1b]0;pwned by a completion\x07", "\a"
    sys.stdout.write(clear + title + "\rall tests passed\x1b[K\n\x9b31m\x00\x08\x7f")
    sys.stderr.write("\x1b[31;1mred\x1b[0m\x1bc" + bell + "\x1b[?1049h\n")
    raise ValueError("\x1b[2J\x1b]0;title\x07\r\x1b[32mPASSED\x1b[0m\x9b\x85\x08")
