"""fastconv: fast 2D convolution (float32, NCHW) on x86-64 CPUs, from Python.

    import fastconv
    y = fastconv.conv2d(x, w, b, stride=1, padding="same")        # like torch.nn.functional.conv2d
    plan = fastconv.Plan(x.shape, w.shape, padding=1)              # plan once ...
    packed = plan.pack_weights(w, b)                               # ... pack once ...
    y = plan.execute(x, packed)                                    # ... run often, from any thread

Inputs are NumPy float32 arrays or CPU float32 torch tensors; the result is of the input's kind.
`import fastconv.torch` adds a drop-in `Conv2d` and `optimize(model)`. This package never imports
torch itself: it recognises tensors only when the caller has imported torch already.
"""

import os as _os

from . import _fastconv as _C
from ._fastconv import Error, clear_plan_cache, describe_machine_model, forget_wisdom, instruction_set, wisdom_size
from ._api import Candidate, Plan, conv2d, find_algorithms
from ._backward import conv_transpose2d

__version__ = _C.__version__

__all__ = [
    "Candidate", "Error", "Plan", "conv2d", "conv_transpose2d", "find_algorithms", "save_wisdom", "load_wisdom", "forget_wisdom",
    "wisdom_size", "clear_plan_cache", "instruction_set", "set_threading", "threading", "release_buffers", "__version__",
    "calibrate", "describe_machine_model",
]


def set_threading(name):
    """Where plans of several threads run their tasks: 'openmp' (the default when built with it), on
    the calling thread's OpenMP team, which PyTorch shares, so that torch's idle workers take
    fastconv's tasks instead of spinning beside them; or 'tbb', fastconv's own oneTBB arena. The
    results are bitwise the same. FASTCONV_THREADING sets it at import. Not while plans execute."""
    _C.set_threading(str(name))


def release_buffers():
    """Frees the large output buffers fastconv keeps for reuse (at most 1 GiB; fastconv.torch takes
    layer outputs of 4 MiB or more from them) and returns the bytes freed."""
    return _C.release_buffers()


def threading():
    """'openmp', 'tbb', or 'host' (a runner installed through the C++ API)."""
    return _C.threading()


set_threading(_os.environ.get("FASTCONV_THREADING", "openmp" if _C.has_openmp else "tbb"))


def save_wisdom(path):
    """Writes the choices Measure mode made (and FFTW's wisdom) to `path`."""
    _C.save_wisdom(str(path))


def load_wisdom(path):
    """Merges a file written by save_wisdom; a corrupt, foreign or stale file raises Error."""
    _C.load_wisdom(str(path))


def calibrate(seconds=30, threads=None):
    """Fits the planner's machine model to this machine (about `seconds` of timing, `threads`
    threads, None: all) and installs it when it ranks the timed layers at least as well as the
    defaults; save_wisdom keeps it. Returns the report. describe_machine_model() shows the model."""
    seconds = float(seconds)
    threads = 0 if threads is None else int(threads)
    if threads < 0:
        raise Error(f"threads must be None (all) or >= 1, got {threads}")
    return _C.calibrate(seconds, threads)
