//! The gateway in-process (tower `oneshot`): MLflow wire rules.
