"""The office tool (``gridcare``) and the local runner of ``make run``.

It knows the services by name and speaks to them only through their APIs
(``api.<service>.<op>``) and, for reference data, by publishing what the office keeps: it
never imports a service's tables or opens its store.
"""
