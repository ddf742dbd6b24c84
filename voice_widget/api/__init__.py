"""The widget's REST API: token/dispatch, end, public persona config, health, webhook."""
