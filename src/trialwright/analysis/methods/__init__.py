"""Statistical methods by outcome type, each a pure module of functions returning frozen results (see base)."""
