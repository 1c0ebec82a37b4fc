//! The catalogue: every text of the page, English then Italian (see `i18n`). Placeholders in
//! braces are filled by `Msg::fill`; both languages name the same ones.

use super::Lang;

macro_rules! catalogue {
    ($($key:ident: $en:literal, $it:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Msg {
            $($key,)*
        }

        impl Msg {
            pub const ALL: &'static [Msg] = &[$(Msg::$key,)*];

            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $(
                        (Msg::$key, Lang::En) => $en,
                        (Msg::$key, Lang::It) => $it,
                    )*
                }
            }
        }
    };
}

catalogue! {
    // The page
    AppName: "Sentiment Monitor", "Sentiment Monitor";
    Language: "Language", "Lingua";
    FooterPrivacy: "Texts are analysed on this device. Only feedback you send leaves it.",
        "I testi sono analizzati su questo dispositivo. Ne esce solo il feedback che invii.";
    Dismiss: "Dismiss", "Chiudi";
    Cancel: "Cancel", "Annulla";
    Settings: "Settings", "Impostazioni";

    // Labels of the sentiment models
    LabelNegative: "negative", "negativo";
    LabelNeutral: "neutral", "neutro";
    LabelPositive: "positive", "positivo";

    // One post
    AnalyseTitle: "Analyse a post", "Analizza un post";
    AnalyseInputLabel: "Text to analyse", "Testo da analizzare";
    AnalysePlaceholder: "Paste or type a post… it is analysed as you type (Ctrl+Enter analyses at once)",
        "Incolla o scrivi un post… viene analizzato mentre scrivi (Ctrl+Invio lo analizza subito)";
    Analyse: "Analyse", "Analizza";
    Analysing: "Analysing…", "Analisi in corso…";
    RunsOnDevice: "Runs on this device; the text is not sent anywhere.",
        "Gira su questo dispositivo; il testo non viene inviato da nessuna parte.";
    WaitingForModel: "Waiting for the model…", "In attesa del modello…";
    ScoreOf: "{label} score", "punteggio {label}";

    // Explain
    Explain: "Explain", "Spiega";
    ExplainHint: "Which words drove this prediction", "Quali parole hanno determinato questa previsione";
    Explaining: "Explaining…", "Spiegazione in corso…";
    ExplainingProgress: "Explaining… {done} of {total} passes", "Spiegazione in corso… {done} di {total} passaggi";
    ExplainWhichLabel: "How each word moved the score of", "Come ogni parola ha spostato il punteggio di";
    ExplainWordTitle: "{weight} to the {label} score", "{weight} al punteggio {label}";
    ExplainBeyondLimit: "Not read: past the model's length limit", "Non letta: oltre il limite di lunghezza del modello";
    ExplainLegendWord: "word", "parola";
    ExplainLegendToward: "pushes toward {label} (solid underline)", "spinge verso {label} (sottolineatura continua)";
    ExplainLegendAway: "pushes away from {label} (dashed underline)", "allontana da {label} (sottolineatura tratteggiata)";
    ExplainLegendStrength: "the stronger the colour, the larger the effect", "più il colore è intenso, più l'effetto è grande";
    ExplainTopWords: "Words that mattered most", "Le parole che hanno pesato di più";
    ExplainToward: "toward {label}", "verso {label}";
    ExplainAway: "away from {label}", "lontano da {label}";
    ExplainMethod: "Method: occlusion. A word's weight is how much the {label} score drops when that word is deleted; computed on this device with the loaded model ({rows} passes in {ms} ms).",
        "Metodo: occlusione. Il peso di una parola è quanto scende il punteggio {label} se la si cancella; calcolato su questo dispositivo con il modello caricato ({rows} passaggi in {ms} ms).";

    // Feedback
    FeedbackQuestion: "Was this right?", "Era giusto?";
    FeedbackUnsure: "The model is unsure — which label is right? Your answer improves it.",
        "Il modello è incerto: quale etichetta è giusta? La tua risposta lo migliora.";
    FeedbackRight: "✓ Right", "✓ Giusto";
    FeedbackOrItIs: "or it is:", "oppure è:";
    FeedbackNote: "Note (optional)", "Nota (facoltativa)";
    FeedbackSend: "Send correction", "Invia correzione";
    FeedbackSending: "Sending…", "Invio in corso…";
    FeedbackWaiting: "Waiting: the feedback server is unreachable ({detail}). Kept on this device and retried automatically.",
        "In attesa: il server del feedback non è raggiungibile ({detail}). Resta su questo dispositivo e verrà ritentato da solo.";
    FeedbackSent: "Sent — thank you!", "Inviato, grazie!";
    FeedbackFailed: "Failed: the server refused it ({detail}).", "Non riuscito: il server l'ha rifiutato ({detail}).";
    StateSending: "sending", "invio";
    StateWaiting: "waiting", "in attesa";
    StateSent: "sent", "inviato";
    StateFailed: "failed", "non riuscito";
    OutboxBadge: "{n} feedback waiting", "{n} feedback in attesa";
    OutboxBadgeTitle: "Feedback kept on this device until the server is reachable",
        "Feedback conservato su questo dispositivo finché il server non è raggiungibile";

    // Many posts
    BatchTitle: "Analyse many posts", "Analizza molti post";
    BatchInputLabel: "Paste one post per line, or CSV/JSONL with a header",
        "Incolla un post per riga, oppure CSV/JSONL con intestazione";
    BatchOpenFile: "…or open a file", "…oppure apri un file";
    BatchFormat: "Format", "Formato";
    FormatAuto: "auto", "automatico";
    FormatLines: "lines", "righe";
    BatchTextColumn: "Text column", "Colonna del testo";
    BatchDateColumn: "Date column", "Colonna della data";
    NoDateColumn: "(none)", "(nessuna)";
    AnalyseAll: "Analyse all", "Analizza tutti";
    InputSummary: "{rows} rows, columns: {columns}", "{rows} righe, colonne: {columns}";
    InputEmpty: "The input is empty.", "Non c'è nulla da leggere.";
    InputUnclosedQuote: "CSV line {line}: a quoted field is not closed.", "CSV, riga {line}: un campo tra virgolette non è chiuso.";
    InputJson: "JSONL line {line}: {detail}", "JSONL, riga {line}: {detail}";
    InputNotObject: "JSONL line {line}: expected an object like {\"text\": \"...\"}.",
        "JSONL, riga {line}: serve un oggetto come {\"text\": \"...\"}.";
    InputNoColumn: "There is no column named {column}.", "Non c'è una colonna chiamata {column}.";
    InputEmptyText: "Row {row}: the text is empty.", "Riga {row}: il testo è vuoto.";
    InputPickTextColumn: "Pick the column that holds the text.", "Scegli la colonna che contiene il testo.";
    InputNothing: "There is nothing to analyse.", "Non c'è nulla da analizzare.";
    InputFileUnreadable: "Could not read {file}: {detail}", "Impossibile leggere {file}: {detail}";
    BatchCancelled: "Cancelled after {done} of {total}.", "Annullato dopo {done} di {total}.";
    BatchDone: "{n} posts analysed in {seconds} s ({rate} per second).", "{n} post analizzati in {seconds} s ({rate} al secondo).";
    BatchClear: "Clear results", "Cancella i risultati";
    BatchRestored: "Results of your last batch (model {version}), kept on this device.",
        "Risultati della tua ultima analisi (modello {version}), conservati su questo dispositivo.";
    BatchNotKept: "These results are too large to keep on this device: a reload loses them (the reviews you send are kept).",
        "Questi risultati sono troppo grandi per restare su questo dispositivo: ricaricando la pagina si perdono (le revisioni inviate restano).";
    LabelDistribution: "Label distribution", "Distribuzione delle etichette";
    NoTrendChart: "No date column (or no parsable dates): no trend chart.",
        "Nessuna colonna di date (o date non leggibili): niente grafico dell'andamento.";
    ChartTitle: "Daily share of each label ({days} days)", "Quota giornaliera di ogni etichetta ({days} giorni)";
    ChartAria: "Daily share of labels from {first} to {last}", "Quota giornaliera delle etichette dal {first} al {last}";

    // Review queue
    ReviewProgress: "{done} of {total} reviewed", "{done} di {total} revisionati";
    ReviewKeys: "Keys: ↑/↓ move, 1/2/3 give a label, Enter says the prediction is right (✓), E explains the row.",
        "Tasti: ↑/↓ per spostarsi, 1/2/3 per dare un'etichetta, Invio conferma la previsione (✓), E spiega la riga.";
    ShowLabel: "Show", "Mostra";
    AllLabels: "all labels", "tutte le etichette";
    ConfidenceLabel: "Confidence", "Confidenza";
    AnyConfidence: "any", "qualsiasi";
    ConfidenceBelow: "below {percent}", "sotto il {percent}";
    ReviewShown: "Rows", "Righe";
    ShownAll: "all", "tutte";
    ShownUnreviewed: "not reviewed", "da revisionare";
    ShownReviewed: "reviewed", "revisionate";
    RowsShown: "{n} of {total} rows", "{n} di {total} righe";
    RowsShownLimited: "showing {limit} of {n} (the exports have all {total})", "ne mostro {limit} di {n} (le esportazioni le hanno tutte e {total})";
    ExportCsv: "Export CSV", "Esporta CSV";
    ExportJsonl: "Export JSONL", "Esporta JSONL";
    ColText: "text", "testo";
    ColDate: "date", "data";
    ColLabel: "label", "etichetta";
    ColConfidence: "confidence", "confidenza";
    ColReview: "review", "revisione";
    ReviewRowAria: "Review of row {n}", "Revisione della riga {n}";
    ReviewRightTitle: "The prediction is right (Enter)", "La previsione è giusta (Invio)";

    // The model
    ModelTitle: "Model", "Modello";
    ModelVersion: "Version", "Versione";
    ModelSource: "Source", "Origine";
    ModelQuantization: "Quantization", "Quantizzazione";
    ModelSize: "Size", "Dimensione";
    ModelLabels: "Labels", "Etichette";
    ModelCreated: "Created", "Creato";
    ModelLoadedFrom: "Loaded from", "Caricato da";
    LoadedFromCache: "browser cache in {ms} ms", "cache del browser in {ms} ms";
    LoadedFromNetwork: "downloaded in {ms} ms", "scaricato in {ms} ms";
    ModelKernel: "Kernel", "Kernel";
    ModelMemory: "Worker memory", "Memoria del worker";
    ModelMetrics: "Metrics", "Metriche";
    NotCached: "Not cached: {detail}.", "Non in cache: {detail}.";
    StatusLabel: "Status:", "Stato:";
    StatusLoading: "loading", "caricamento";
    StatusReady: "ready", "pronto";
    StatusError: "error", "errore";
    BundleUrlLabel: "Bundle URL (a folder, or a Hub repo id like owner/name)",
        "URL del bundle (una cartella, o l'id di un repo dell'Hub come owner/name)";
    LoadThisModel: "Load this model", "Carica questo modello";
    ClearCachedModel: "Clear cached model", "Cancella il modello in cache";
    StartingWorker: "Starting the model worker…", "Avvio del worker del modello…";
    ModelDownload: "Model download", "Download del modello";
    LoadingModel: "Loading the model: {loaded} of {total} ({percent})", "Caricamento del modello: {loaded} di {total} ({percent})";

    // Announcements
    NoticeOfflineModel: "Offline: using the cached model {version}.", "Offline: uso il modello in cache {version}.";
    NoticeNewModel: "A new model version is available and loaded: {version} (was {was}).",
        "È disponibile ed è stata caricata una nuova versione del modello: {version} (prima {was}).";
    NoticeCacheCleared: "Cleared the cached model ({n} entries). The next visit downloads it again.",
        "Modello in cache cancellato ({n} voci). La prossima visita lo scarica di nuovo.";
    NoticeNewApp: "The page was updated to build {build} (was {was}).", "La pagina è stata aggiornata alla build {build} (prima {was}).";

    // Problems
    ProblemFetch: "The model could not be downloaded: {detail}. Check the connection and reload.",
        "Impossibile scaricare il modello: {detail}. Controlla la connessione e ricarica.";
    ProblemIntegrity: "The downloaded model does not match its manifest ({detail}). It may be mid-publish or corrupted; reload to try again.",
        "Il modello scaricato non corrisponde al suo manifest ({detail}). Forse è in pubblicazione o è danneggiato: ricarica per riprovare.";
    ProblemBundle: "The model bundle cannot be used: {detail}", "Il bundle del modello non è utilizzabile: {detail}";
    ProblemNotReady: "The model is not loaded yet; wait until the status says ready.",
        "Il modello non è ancora caricato: attendi che lo stato diventi pronto.";
    ProblemInference: "The analysis failed: {detail}", "L'analisi non è riuscita: {detail}";
    ProblemProtocol: "Internal error between page and worker: {detail}", "Errore interno tra pagina e worker: {detail}";
    ProblemNotStarted: "The model worker could not start: {detail}", "Impossibile avviare il worker del modello: {detail}";
    ProblemStopped: "The model worker stopped ({detail}). The device may be out of memory: close other tabs and reload the page.",
        "Il worker del modello si è fermato ({detail}). Forse il dispositivo ha esaurito la memoria: chiudi altre schede e ricarica la pagina.";
    ProblemUnreachable: "Could not reach the model worker: {detail}", "Impossibile raggiungere il worker del modello: {detail}";

    // The monitor view (#monitor)
    NavAnalyse: "Analyse", "Analisi";
    NavMonitor: "Monitor", "Monitoraggio";
    MonitorTitle: "How the model is doing", "Come va il modello";
    MonitorIntro: "What users told the model, and what the nightly retraining did about it. Read from the feedback server and the model store; nothing here is private.",
        "Cosa hanno detto gli utenti al modello e cosa ne ha fatto il riaddestramento notturno. Letto dal server del feedback e dall'archivio dei modelli; qui non c'è nulla di privato.";
    MonitorRefresh: "Refresh", "Aggiorna";
    MonitorLoading: "Loading…", "Caricamento…";
    MonitorSources: "Feedback: {api} · Model store: {store}", "Feedback: {api} · Archivio dei modelli: {store}";
    MonitorNotFound: "{url} was not found (404).", "{url} non esiste (404).";
    MonitorHttpStatus: "{url} answered {status}: {detail}", "{url} ha risposto {status}: {detail}";
    MonitorUnreachable: "{url} could not be reached: {detail}.", "{url} non è raggiungibile: {detail}.";
    MonitorInvalid: "{url} is not what the monitor expects: {detail}", "{url} non è come il monitoraggio si aspetta: {detail}";
    MonitorApiHint: "The feedback figures come from the server's GET /api/feedback/stats: open the page with ?api=https://your-server (or set <meta name=\"sentiment-api-url\">).",
        "I dati del feedback vengono dal GET /api/feedback/stats del server: apri la pagina con ?api=https://tuo-server (o imposta <meta name=\"sentiment-api-url\">).";
    MonitorStoreHint: "The registry and the reports come from the model store (the Hub model repo nightly publishes to): open the page with ?model=OWNER/NAME.",
        "Il registro e i resoconti vengono dall'archivio dei modelli (il repo del modello su cui pubblica il riaddestramento notturno): apri la pagina con ?model=PROPRIETARIO/NOME.";
    MonitorNoStore: "No registry.json at {url}: the model is served as a single bundle, not from a model store, so there are no versions or nightly reports to show. They come from the model store nightly publishes to: open the page with ?model=OWNER/NAME.",
        "Nessun registry.json in {url}: il modello è servito come bundle singolo, non da un archivio dei modelli, quindi non ci sono versioni né resoconti notturni da mostrare. Vengono dall'archivio su cui pubblica il riaddestramento notturno: apri la pagina con ?model=PROPRIETARIO/NOME.";
    MonitorNoFeedback: "No feedback yet: the charts fill in as users correct or confirm predictions.",
        "Ancora nessun feedback: i grafici si riempiono man mano che gli utenti correggono o confermano le previsioni.";

    MonitorAgreementTitle: "Agreement of users with the model", "Accordo degli utenti con il modello";
    MonitorAgreementHelp: "Share of feedback where the user's label equals the prediction, per day and per model version; the band is the Wilson 95 % interval. Nightly retrains when the band's top falls below the threshold (with enough feedback).",
        "Quota di feedback in cui l'etichetta dell'utente coincide con la previsione, per giorno e per versione del modello; la fascia è l'intervallo di Wilson al 95 %. Il riaddestramento notturno parte quando il limite superiore della fascia scende sotto la soglia (con abbastanza feedback).";
    MonitorAgreementAria: "Agreement per day from {first} to {last}, one line per model version",
        "Accordo per giorno dal {first} al {last}, una linea per versione del modello";
    MonitorBaseline: "baseline {value}", "riferimento {value}";
    MonitorThreshold: "retrain below {value}", "riaddestra sotto {value}";
    MonitorBaselineOf: "Baseline {baseline} for {version} (from {source}); threshold {threshold} = baseline − tolerance {tolerance}.",
        "Riferimento {baseline} per {version} (da {source}); soglia {threshold} = riferimento − tolleranza {tolerance}.";
    MonitorSourceRegistry: "its registry entry", "la sua voce nel registro";
    MonitorSourceReport: "the newest nightly report that judged it", "il resoconto notturno più recente che l'ha valutata";
    MonitorNoBaseline: "No baseline known yet: nightly records one when it first judges a version.",
        "Nessun riferimento ancora: il riaddestramento notturno ne registra uno quando valuta per la prima volta una versione.";
    MonitorColVersion: "Version", "Versione";
    MonitorColFeedback: "Feedback", "Feedback";
    MonitorColAgreement: "Agreement", "Accordo";
    MonitorColInterval: "95 % interval", "Intervallo 95 %";
    MonitorColDays: "Days", "Giorni";
    MonitorColBaseline: "Baseline", "Riferimento";
    MonitorChampionBadge: "champion", "campione";

    MonitorVolumeTitle: "Feedback per day and label", "Feedback per giorno ed etichetta";
    MonitorVolumeAria: "Feedback count per day from {first} to {last}, stacked by label; the tallest day has {max}",
        "Numero di feedback per giorno dal {first} al {last}, impilati per etichetta; il giorno più alto ne ha {max}";

    MonitorMixTitle: "Label mix: feedback against training", "Distribuzione delle etichette: feedback e addestramento";
    MonitorMixFeedback: "feedback for {version} ({n})", "feedback per {version} ({n})";
    MonitorMixTraining: "training data of {version}", "dati di addestramento di {version}";
    MonitorMixNoReference: "The training mix of {version} is not recorded (a version published by hand carries none), so drift cannot be measured.",
        "La distribuzione di addestramento di {version} non è registrata (una versione pubblicata a mano non la riporta), quindi la deriva non si può misurare.";
    MonitorDriftNone: "PSI {psi}: users' labels are distributed as in the training data; agreement figures compare like with like.",
        "PSI {psi}: le etichette degli utenti sono distribuite come nei dati di addestramento; i valori di accordo sono confrontabili.";
    MonitorDriftModerate: "PSI {psi}: the mix of labels has moved a little from the training data; watch it, no action needed yet (alert above {alert}).",
        "PSI {psi}: la distribuzione delle etichette si è un po' spostata rispetto all'addestramento; da tenere d'occhio, per ora nulla da fare (allarme sopra {alert}).";
    MonitorDriftAlert: "PSI {psi}, above the alert level {alert}: users now post a different mix of sentiment than the model was trained on, so agreement can move for that reason alone; nightly retrains if agreement is also below its threshold.",
        "PSI {psi}, sopra la soglia di allarme {alert}: gli utenti ora pubblicano una miscela di sentimenti diversa da quella su cui il modello è stato addestrato, quindi l'accordo può cambiare anche solo per questo; il riaddestramento notturno parte se anche l'accordo è sotto la soglia.";

    MonitorRegistryTitle: "Model versions", "Versioni del modello";
    MonitorColParent: "Parent", "Genitore";
    MonitorColPublished: "Published", "Pubblicata";
    MonitorColQuant: "Weights", "Pesi";
    MonitorColGold: "Gold {metric}", "Gold {metric}";
    MonitorColHoldout: "Holdout {metric}", "Holdout {metric}";
    MonitorHistoryTitle: "Champion changes", "Cambi di campione";
    MonitorKindPublished: "published", "pubblicata";
    MonitorKindPromoted: "promoted", "promossa";
    MonitorKindRollback: "rolled back", "ripristino";
    MonitorNoRegistry: "The model store has no registry yet.", "L'archivio dei modelli non ha ancora un registro.";

    MonitorReportsTitle: "Latest nightly runs", "Ultime esecuzioni notturne";
    MonitorNoReports: "No nightly report in the model store yet.", "Ancora nessun resoconto notturno nell'archivio dei modelli.";
    MonitorReportOf: "{when}: {outcome}", "{when}: {outcome}";
    MonitorOutcomeHold: "hold", "invariato";
    MonitorOutcomePromoted: "promoted", "promosso";
    MonitorOutcomeRejected: "rejected", "respinto";
    MonitorOutcomeRolledBack: "rolled back", "ripristinato";
    MonitorOutcomeFailed: "failed", "fallito";
    MonitorGateTitle: "The gate: {champion} against {challenger}", "Il cancello: {champion} contro {challenger}";
    MonitorColSet: "Measured on", "Misurato su";
    MonitorColChampion: "Champion", "Campione";
    MonitorColChallenger: "Challenger", "Sfidante";
    MonitorColChange: "Change", "Differenza";
    MonitorColRule: "Rule", "Regola";
    MonitorSetHoldout: "feedback holdout ({metric})", "holdout del feedback ({metric})";
    MonitorSetGold: "gold test set ({metric})", "test set gold ({metric})";
    MonitorRuleGain: "gain ≥ {value}", "guadagno ≥ {value}";
    MonitorRuleLoss: "loss ≤ {value}", "perdita ≤ {value}";
    MonitorVerdictPromote: "Verdict: promote.", "Verdetto: promuovere.";
    MonitorVerdictReject: "Verdict: keep the champion.", "Verdetto: tenere il campione.";
    MonitorGuardTitle: "Promotion guard: {champion} against its parent {parent} since {since}",
        "Guardia della promozione: {champion} contro il genitore {parent} dal {since}";
    MonitorMonitorLine: "Agreement {agreement} on {n} feedback for {version} (95 % {low}–{high}), baseline {baseline}: {decision}.",
        "Accordo {agreement} su {n} feedback per {version} (95 % {low}–{high}), riferimento {baseline}: {decision}.";
    MonitorReportPsi: "Label-mix PSI {psi} (alert above {alert}).", "PSI della distribuzione delle etichette {psi} (allarme sopra {alert}).";
    MonitorReportPsiAlert: "Label-mix drift alert: PSI {psi}, above {alert}.", "Allarme di deriva nella distribuzione delle etichette: PSI {psi}, sopra {alert}.";
    MonitorOpenReport: "Full report (JSON)", "Resoconto completo (JSON)";
}
