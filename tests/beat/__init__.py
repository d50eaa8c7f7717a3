"""Periodic tasks: schedules, lock stores, and beats that fail over."""
