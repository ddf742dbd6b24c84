/** The widget's labels in German. */
export default {
  endedShort: 'Beendet',
  apiUnreachable:
    'Der Server der Assistenz hat nicht geantwortet. Prüfen Sie Ihre Verbindung oder fragen Sie die Betreiber der Website, ob diese Seite die Assistenz nutzen darf.',
  offline: 'Nicht verbunden',
  start: 'Gespräch starten',
  startAgain: 'Neu starten',
  retry: 'Erneut versuchen',
  connecting: 'Verbinde…',
  waitingForAgent: 'Warte auf die Assistenz…',
  initializing: 'Wird vorbereitet…',
  listening: 'Hört zu',
  thinking: 'Denkt nach',
  speaking: 'Spricht',
  reconnecting: 'Verbinde neu…',
  mute: 'Mikrofon stummschalten',
  unmute: 'Mikrofon einschalten',
  muted: 'Ihr Mikrofon ist stummgeschaltet',
  end: 'Gespräch beenden',
  close: 'Schließen',
  open: 'Assistenz öffnen',
  captions: 'Live-Untertitel',
  you: 'Sie',
  enableSound: 'Tippen, um den Ton einzuschalten',
  soundBlocked: 'Ihr Browser hat den Ton angehalten.',
  ended: 'Das Gespräch ist beendet.',
  endedTimeout: 'Das Gespräch hat seine Höchstdauer erreicht.',
  endedIdle: 'Die Assistenz hat das Gespräch verlassen, weil niemand gesprochen hat.',
  endedError: 'Das Gespräch wurde wegen eines Problems auf unserer Seite beendet.',
  agentUnavailable:
    'Die Assistenz ist gerade nicht erreichbar. Bitte versuchen Sie es später noch einmal.',
  budgetExhausted:
    'Die Assistenz ist gerade nicht verfügbar. Bitte schauen Sie später wieder vorbei.',
  micDenied: 'Das Mikrofon ist blockiert, daher kann die Assistenz Sie nicht hören.',
  micHowTo:
    'Mikrofon erlauben: Klicken Sie auf das Kamera- oder Schloss-Symbol in der Adressleiste, erlauben Sie das Mikrofon und versuchen Sie es erneut.',
  micUnavailable:
    'Kein Mikrofon gefunden. Schließen Sie eines an oder prüfen Sie, ob eine andere App es nutzt.',
  unreachable:
    'Der Sprachdienst ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.',
  disconnected: 'Die Verbindung ist abgebrochen und konnte nicht wiederhergestellt werden.',
  apiRefused: 'Das Gespräch konnte nicht gestartet werden.',
  startFailed: 'Die Assistenz konnte das Gespräch nicht beginnen.',
  agentFailed: 'Die Assistenz konnte dem Gespräch nicht beitreten. Bitte versuchen Sie es gleich noch einmal.',
  poweredBy: 'Sprachassistenz',
};
