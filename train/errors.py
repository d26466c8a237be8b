"""Training errors (subclasses of cnnport.runtime.CnnportError, printed without a traceback).

```
CnnportError
 └── TrainError            a run cannot start or go on
      ├── DatasetError     a data set is missing, empty, unreadable or offline
      ├── WeightsError     pretrained weights cannot be had (offline, bad file)
      └── WorkerLostError  a multi-worker run lost a worker (TensorFlow said so)
```
"""

from cnnport.runtime import CnnportError

__all__ = ["DatasetError", "TrainError", "WeightsError", "WorkerLostError"]


class TrainError(CnnportError):
    """A training run cannot start or continue."""


class DatasetError(TrainError):
    """A data set is missing, empty, unreadable, or needs the internet."""


class WeightsError(TrainError):
    """Pretrained weights cannot be loaded."""


class WorkerLostError(TrainError):
    """A worker of a multi-worker run stopped answering and TensorFlow raised (a stalled
    collective is ended by the watchdog process instead; see cnnport.train.distributed)."""
