"""Simulated vehicles: load generators now, the realistic fleet simulator later."""
