"""The worker side of django-voice-widget: the only part that imports livekit.agents."""
