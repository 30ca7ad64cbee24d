"""The analysis library behind the four runbooks in ``notebooks/`` (never deployed).

Each notebook holds the narrative, the calls and the plots; the logic it runs lives here, typed and
unit-tested: parameter checks (``params``), statistics (``stats``), the open-model load generator
(``loadgen``), Step Functions history analysis (``workflow``), memory tuning (``tuning``), cost
adapters over ``chalicelib.cost`` (``costs``), plots, output writers and the papermill runner
(``execute``).
"""
