/**
 * django-voice-widget: the script a page loads. It defines <voice-widget>; livekit-client
 * arrives later, in its own chunk, when the widget is about to connect.
 */

import { defineVoiceWidget } from './element.js';

defineVoiceWidget();
