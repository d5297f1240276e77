"""The Spark engine: one session per process, and tables read by Spark, never collected."""
