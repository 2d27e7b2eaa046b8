"""Mechanisms shared by every taskmesh service.

Settings, problem+json errors, JSON logging, request ids, health and metrics,
telemetry, MongoDB and Redis clients, the token verifier
and the events library. Business rules of one service never live here.
"""
