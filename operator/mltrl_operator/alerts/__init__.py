"""The Alertmanager receiver: monitoring alerts recorded as intent on technologies."""
