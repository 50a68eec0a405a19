"""The sections of the settings schema, one module per concern; `conf.settings` assembles them."""
