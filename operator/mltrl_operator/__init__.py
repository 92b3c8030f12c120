"""mltrl-operator: ML Technology Readiness Levels on Kubernetes."""
