"""The resumable pipeline: stages, the run directory, and what stages and components see of a run."""
from fleming.pipeline.context import RunContext, StageContext
from fleming.pipeline.runner import StageOutcome, check_stage_options, run_pipeline, stage_names

__all__ = ["RunContext", "StageContext", "StageOutcome", "check_stage_options", "run_pipeline", "stage_names"]
