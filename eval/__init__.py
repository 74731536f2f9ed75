"""Evaluation scripts: recall@k tables (eval.recall), decline calibration (eval.calibrate)."""
