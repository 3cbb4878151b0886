"""A plug-in module that fails to import, as a half-finished commit would."""

raise ImportError("this module is broken on purpose")
