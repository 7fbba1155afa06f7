"""Request and response schemas. The OpenAPI document is generated from these same models.

Requests are strict (no type coercion) and reject unknown fields, so a body carrying
``balance`` or ``tenant_id`` is refused rather than silently ignored. One conversion is
declared: a decimal field (an amount, a rate, a factor) takes a decimal string or a JSON
integer, never a JSON number with a fraction (``DECIMAL_RULE``).

A rule pydantic cannot write into JSON Schema by itself (no repeats, not zero, exactly one
of two fields...) is declared next to the check that enforces it, with the JSON Schema that
says it (``json_schema_extra``), so that the document never accepts a body the API refuses.
Left out of the document: rules that depend on the moment or on the tenant (the window of
``occurred_at``, said in its description; the currency's decimal places, an IANA time zone,
an opaque cursor), and so far the
expiry policy's combinations of fields (which of days, months and period each kind takes).
"""
