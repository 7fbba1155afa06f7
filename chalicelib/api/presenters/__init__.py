"""Domain objects -> response schemas, one module per feature, named like the feature's
module under ``chalicelib.api.schemas``.

A handler imports the presenters it uses inside its body
(``from chalicelib.api.presenters import rewards as presenters``), and a presenter imports its
schemas inside its body: importing the app loads neither.
"""
