"""The lab's GitLab runner: runs a CI job as local processes in its image's root filesystem.

``config`` reads the runner's ``config.toml`` (``concurrent``, builds and cache folders, the default image);
``images`` turns a job's ``image:`` into a root filesystem; ``executor`` runs one job: working copy, cache,
artifacts of earlier jobs, ``before_script`` + ``script`` then ``after_script``, artifacts and cache upload,
with the trace streamed to a file while it runs, a timeout and a cancel that kills the job's processes.
"""

from .config import RunnerConfig
from .executor import JobResult, JobRun, Runner

__all__ = ["JobResult", "JobRun", "Runner", "RunnerConfig"]
