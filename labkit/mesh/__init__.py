"""The mesh (chapter 09): Istio's resources translated into real Envoy sidecars' configuration, the metrics and
traces those sidecars report, and the service graph Kiali draws from them. ``identity`` is what every part agrees on.
"""
