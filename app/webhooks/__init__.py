"""The edge to webhook consumers: signing, retry schedule, URL guard, delivery."""
