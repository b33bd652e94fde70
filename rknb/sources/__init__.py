"""Where data comes from: Prometheus, clusters, manifests, bundles and the demo."""
