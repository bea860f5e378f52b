"""Entity mapping rules: which Revflow objects can be mapped, and the external type of a customer.

>>> customer_external_type("hubspot"), customer_external_type("salesforce"), customer_external_type("stripe")
('company', 'account', 'customer')
>>> customer_external_type("some_erp")
'customer'
"""

from __future__ import annotations

__all__ = ["CUSTOMER_EXTERNAL_TYPES", "OBJECT_TYPES", "customer_external_type"]

#: Revflow object types a mapping may point at.
OBJECT_TYPES = ("customer", "subscription", "invoice", "plan", "price", "product", "credit_note", "payment")

#: What a Revflow customer is called in each known system; customer ids given through the customer API's
#: ``external_ids`` are mappings of this type.
CUSTOMER_EXTERNAL_TYPES = {"hubspot": "company", "salesforce": "account"}


def customer_external_type(system: str) -> str:
    """The external type a Revflow customer maps to in ``system`` (``customer`` unless known otherwise)."""
    return CUSTOMER_EXTERNAL_TYPES.get(system, "customer")
