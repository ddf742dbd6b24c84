/* Persona admin: show only the fields that apply to the chosen pipeline, providers, avatar
 * and preview, and point each voice and model field at its provider's suggestions. Without this script
 * every field stays visible and the voice fields suggest the saved provider's voices. */
(function () {
  "use strict";

  /* Stage → provider → the fields only that provider uses (key terms, base URL, Azure…),
   * from the provider catalogue (voice_widget/providers.py), rendered into the page. */
  function providerFields() {
    const data = document.getElementById("vw-provider-fields");
    return data ? JSON.parse(data.textContent) : {};
  }

  // Each provider's own field: shown when one of the chosen [stage, provider] pairs uses it.
  function providersOwnFields(catalogue, chosen) {
    const shown = {};
    for (const stage of Object.keys(catalogue)) {
      for (const fields of Object.values(catalogue[stage])) {
        for (const name of fields) shown[name] = false;
      }
    }
    for (const [stage, provider] of chosen) {
      for (const name of (catalogue[stage] || {})[provider] || []) shown[name] = true;
    }
    return shown;
  }

  function rules(s, catalogue) {
    const pipeline = !s.realtime;
    const speaks = pipeline || s.useTts;
    const serverVad = s.realtime && s.rtTurns === "server_vad";
    const chosen = pipeline
      ? [["stt", s.stt], ["llm", s.llm], ["llm", s.llmFallback], ["tts", s.tts]]
      : [["realtime", s.rt], ...(s.useTts ? [["tts", s.tts]] : [])];
    return {
      ...providersOwnFields(catalogue, chosen),
      stt_provider: pipeline,
      stt_model: pipeline,
      llm_provider: pipeline,
      llm_model: pipeline,
      llm_temperature: pipeline,
      tts_provider: speaks,
      tts_model: speaks,
      tts_voice: speaks,
      tts_speed: speaks,
      realtime_provider: s.realtime,
      realtime_model: s.realtime,
      realtime_voice: s.realtime,
      realtime_use_tts: s.realtime,
      realtime_turn_detection: s.realtime,
      realtime_vad_threshold: serverVad,
      realtime_prefix_padding_ms: serverVad,
      realtime_silence_duration_ms: serverVad,
      realtime_eagerness: s.realtime && s.rtTurns === "semantic_vad",
      stt_fallback_provider: pipeline,
      stt_fallback_model: pipeline,
      llm_fallback_provider: pipeline,
      llm_fallback_model: pipeline,
      tts_fallback_provider: speaks,
      tts_fallback_model: speaks,
      tts_fallback_voice: speaks,
      min_interruption_duration: s.interruptions,
      min_interruption_words: s.interruptions,
      false_interruption_timeout: s.interruptions,
      avatar_id: s.avatar !== "none",
      preview_image: s.preview === "poster",
      preview_image_url: s.preview === "poster",
      preview_video: s.preview === "poster",
      preview_video_url: s.preview === "poster",
    };
  }

  function init(form) {
    const value = (name) => {
      const field = form.elements.namedItem(name);
      if (!field) return "";
      return field.type === "checkbox" ? field.checked : field.value;
    };
    const state = () => ({
      realtime: value("pipeline_kind") === "realtime",
      useTts: value("realtime_use_tts") === true,
      stt: value("stt_provider"),
      llm: value("llm_provider"),
      llmFallback: value("llm_fallback_provider"),
      tts: value("tts_provider"),
      rt: value("realtime_provider"),
      rtTurns: value("realtime_turn_detection"),
      interruptions: value("allow_interruptions") === true,
      avatar: value("avatar_provider"),
      preview: value("preview_mode"),
    });

    // A field's box: its own wrapper in a multi-field line, else its whole row.
    function box(name) {
      const inLine = form.querySelector(".fieldBox.field-" + name);
      if (inLine) return inLine.parentElement;
      return form.querySelector(".form-row.field-" + name);
    }

    const catalogue = providerFields();

    function apply() {
      const shown = rules(state(), catalogue);
      for (const [name, show] of Object.entries(shown)) {
        const element = box(name);
        // A field with an error always stays in sight.
        if (element) element.hidden = !show && !element.querySelector(".errorlist");
      }
      for (const row of form.querySelectorAll(".form-row")) {
        const parts = row.querySelectorAll(".form-multiline > div");
        if (parts.length) row.hidden = [...parts].every((part) => part.hidden);
      }
      for (const fieldset of form.querySelectorAll("fieldset.module")) {
        const rows = [...fieldset.querySelectorAll(".form-row")];
        fieldset.hidden = rows.length > 0 && rows.every((row) => row.hidden);
      }
      for (const input of form.querySelectorAll("input[data-provider-field]")) {
        const kind = input.dataset.listKind || "_voices_";
        const list = input.id + kind + value(input.dataset.providerField);
        if (document.getElementById(list)) input.setAttribute("list", list);
        else input.removeAttribute("list");
      }
    }

    form.addEventListener("change", apply);
    apply();
  }

  function start() {
    const form = document.getElementById("persona_form");
    if (form) init(form);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
