"""Run-time inference: predictor, ONNX export and backends."""
