"""The engine: rule matching (`rewrite`, over the tables in `rules/`), differentials
(`differentiate`), reverse mode (`adjoint`), simplification (`simplify`), and `engine.run`, which
chains them and keeps the trace the derivation renders."""
