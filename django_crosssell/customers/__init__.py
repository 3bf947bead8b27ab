"""Know the customers: RFM snapshot, segments, audiences, LWP and personal recommendations.

README "Know the customers". The snapshot (:mod:`.snapshot`, numpy) writes one
:class:`~.models.CustomerMetrics` row per customer; :mod:`.audiences` decides who is in a
saved audience (numpy-free, used by the recommendation and bundle queries);
:mod:`.lwp` explains a customer's room to expand.
"""
