"""Simulated vehicles: the fleet (SUMO or kinematic movement, real agents), its ground truth, and
the flood load generator."""
