"""HAProxy: the lab's L4/L7 load balancer, one config template for both backends."""
