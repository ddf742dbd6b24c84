"""Test doubles: stand-ins for what cannot run offline (a LiveKit room, a job context)."""
