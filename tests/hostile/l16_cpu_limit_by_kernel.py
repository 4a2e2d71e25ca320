"""Class 16: a sample that never ends, ignores SIGXCPU and lowers its own RLIMIT_CPU: the
kernel kills it (SIGKILL) before the sandbox's CPU-time poll does. It did not finish in time:
the label must be timeout.

task: HumanEval/53
"""
import resource
import signal

signal.signal(signal.SIGXCPU, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_CPU, (1, 1))


def add(x: int, y: int):
    """Add two numbers x and y
    """
    while True:
        pass
