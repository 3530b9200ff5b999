"""The service layer: never imports Qt."""
