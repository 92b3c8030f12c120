"""kopf handlers (thin) and the reconcile services they call."""
