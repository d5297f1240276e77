"""The serving runtime's Prometheus metric names, as the deploy commands query them.

One home for every name ``mlci deploy analyze`` puts in a query; a test scrapes a real server's
``/metrics`` and checks that each name here is one it exposes, so a rename on the serving side
fails a test instead of leaving canary analysis with no series.
"""

from __future__ import annotations

#: Requests by ``endpoint`` and status ``code`` (a counter).
REQUESTS = "mlci_requests_total"
#: Time to answer a prediction request (a histogram in seconds): per-bucket counter and total.
DURATION_BUCKET = "mlci_request_duration_seconds_bucket"
DURATION_COUNT = "mlci_request_duration_seconds_count"
#: Rows predicted (a counter).
PREDICTED_ROWS = "mlci_predicted_rows_total"
#: Predictions by predicted ``class`` (a counter, classifiers).
PREDICTIONS = "mlci_predictions_total"
#: Sum and count of predicted values (regressors).
VALUE_SUM = "mlci_prediction_value_sum"
VALUE_COUNT = "mlci_prediction_value_count"

#: The label names the queries group by.
ENDPOINT_LABEL = "endpoint"
CODE_LABEL = "code"
CLASS_LABEL = "class"
BUCKET_LABEL = "le"

#: The endpoints whose requests are predictions (the runtime's own and the Open Inference
#: Protocol's), as a PromQL regular expression: probes and scrapes are not traffic to judge.
PREDICT_ENDPOINTS = r"/predict|/v2/models/.+/infer"

#: Every name a query uses, for the test that checks them against a live ``/metrics``.
QUERIED = (REQUESTS, DURATION_BUCKET, DURATION_COUNT, PREDICTED_ROWS, PREDICTIONS, VALUE_SUM, VALUE_COUNT)
