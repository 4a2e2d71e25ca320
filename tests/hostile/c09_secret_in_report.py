"""Class 9: a root-only (0600) host file read through the sample's capabilities and carried
into the failure report (stdout, stderr, the exception message and traceback).

task: HumanEval/2
"""


def truncate_number(number: float) -> float:
    """ Given a positive floating point number, it can be decomposed into
    and integer part (largest integer smaller than given number) and decimals
    (leftover part always smaller than 1).
    """
    import sys
    try:
        with open("__SECRET_PATH__") as f:
            secret = f.read()
    except OSError as e:
        secret = "unreadable: %s" % e.strerror
    print(secret)
    print(secret, file=sys.stderr)
    raise ValueError(secret)
