"""A correct program that computes in a thread (the neighbour class 10's process hog targets).

task: HumanEval/53
"""
import threading


def add(x: int, y: int):
    """Add two numbers x and y
    """
    out = []
    worker = threading.Thread(target=lambda: out.append(x + y))
    worker.start()
    worker.join()
    return out[0]
