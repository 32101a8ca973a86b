// The kiosk: camera preview, framing hints, face / card / PIN / pass checks, enrolment with
// consent, the liveness challenge when the tenant's policy asks for one, and the voice when a
// purpose's modality policy needs it (recorded only while the person is asked to speak). It calls the
// JSON API with the session cookie and the page's CSRF token; frames leave the browser only
// as the request that needs them, and nothing is kept here.
'use strict';
(() => {
  const S = JSON.parse(document.getElementById('kiosk-strings').textContent);
  const T = (key) => S[key] || key;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const video = $('video');
  const hint = $('hint');
  const box = $('frame-box');
  const result = $('result');
  let busy = false;
  let lastBox = null;
  let enrolSubject = null;
  // While the person is asked to speak, the hint line is the countdown's.
  let recording = false;
  const kiosk = document.querySelector('.kiosk');
  // Each purpose's modality policy: face, voice, face_and_voice or face_or_voice.
  const policy = { access: kiosk.dataset.access, verification: kiosk.dataset.verification };
  const needsVoice = (purpose) => /voice/.test(policy[purpose] || '');
  const needsFace = (purpose) => policy[purpose] !== 'voice';

  async function api(method, path, body, type, extra) {
    const headers = Object.assign({ 'X-CSRF-Token': csrf }, extra || {});
    if (type) headers['Content-Type'] = type;
    const r = await fetch(path, { method, headers, body, credentials: 'same-origin' });
    let json = null;
    try { json = await r.json(); } catch (e) { json = null; }
    return { status: r.status, json: json || {} };
  }

  function grab(mirror) {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return Promise.resolve(null);
    const c = document.createElement('canvas');
    c.width = w; c.height = h;
    const g = c.getContext('2d');
    if (mirror) { g.translate(w, 0); g.scale(-1, 1); }
    g.drawImage(video, 0, 0, w, h);
    return new Promise((resolve) => c.toBlob(resolve, 'image/jpeg', 0.9));
  }

  let resultTimer = null;
  function show(kind, text) {
    result.hidden = false;
    result.className = 'result ' + kind;
    result.textContent = text;
    result.focus && result.setAttribute('tabindex', '-1');
    clearTimeout(resultTimer);
    resultTimer = setTimeout(() => { result.hidden = true; }, 8000);
  }

  function errorText(j) {
    const code = j && j.code;
    if (code && S['kiosk.code_' + code]) return T('kiosk.code_' + code);
    return T('kiosk.error') + (code ? ' (' + code + ')' : '');
  }

  // ---- microphone: a few seconds of speech as a 16-bit WAV, recorded only while the person
  // is asked to speak; the recording leaves the browser only as the request that needs it.
  const RECORD_SECONDS = 5;
  async function recordVoice() {
    if (recording) return null;
    recording = true;
    try {
      return await recordFor(RECORD_SECONDS);
    } finally {
      recording = false;
    }
  }

  async function recordFor(seconds) {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
        video: false,
      });
    } catch (e) {
      show('error', T('kiosk.no_microphone'));
      return null;
    }
    const ctx = new AudioContext();
    const source = ctx.createMediaStreamSource(stream);
    const node = ctx.createScriptProcessor(4096, 1, 1);
    const chunks = [];
    node.onaudioprocess = (ev) => chunks.push(new Float32Array(ev.inputBuffer.getChannelData(0)));
    source.connect(node);
    node.connect(ctx.destination);
    for (let left = seconds; left > 0; left--) {
      hint.textContent = T('kiosk.speak_now').replace('{0}', String(left));
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    hint.textContent = '';
    node.disconnect();
    source.disconnect();
    stream.getTracks().forEach((t) => t.stop());
    const rate = ctx.sampleRate;
    await ctx.close();
    return wav(chunks, rate);
  }

  function wav(chunks, rate) {
    const n = chunks.reduce((a, c) => a + c.length, 0);
    const buf = new ArrayBuffer(44 + 2 * n);
    const v = new DataView(buf);
    const text = (at, s) => { for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i)); };
    text(0, 'RIFF'); v.setUint32(4, 36 + 2 * n, true); text(8, 'WAVEfmt ');
    v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
    v.setUint32(24, rate, true); v.setUint32(28, 2 * rate, true);
    v.setUint16(32, 2, true); v.setUint16(34, 16, true);
    text(36, 'data'); v.setUint32(40, 2 * n, true);
    let at = 44;
    for (const c of chunks) {
      for (const x of c) {
        v.setInt16(at, Math.max(-1, Math.min(1, x)) * 32767, true);
        at += 2;
      }
    }
    return new Blob([buf], { type: 'audio/wav' });
  }

  // ---- camera and framing hints
  async function startCamera() {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' }, audio: false,
      });
      video.srcObject = stream;
      hint.textContent = T('kiosk.hint_start');
      setInterval(frameHint, 900);
    } catch (e) {
      hint.textContent = T('kiosk.no_camera');
      document.body.dataset.camera = 'none';
    }
  }

  async function frameHint() {
    if (busy || recording || document.hidden) return;
    const blob = await grab(false);
    if (!blob) return;
    busy = true;
    try {
      const r = await api('POST', '/api/v1/quality', blob, 'image/jpeg');
      if (r.status !== 200) { hint.textContent = errorText(r.json); return; }
      const b = r.json.box;
      if (b) {
        // The preview is mirrored: so is the box.
        box.hidden = false;
        box.style.left = ((1 - b[0] - b[2]) * 100) + '%';
        box.style.top = (b[1] * 100) + '%';
        box.style.width = (b[2] * 100) + '%';
        box.style.height = (b[3] * 100) + '%';
      } else {
        box.hidden = true;
      }
      let text;
      if (r.json.code) {
        text = T('kiosk.hint_' + r.json.code);
      } else if (lastBox && b && Math.hypot(b[0] - lastBox[0], b[1] - lastBox[1]) > 0.04) {
        text = T('kiosk.hint_hold_still');
      } else {
        text = T('kiosk.hint_ok');
      }
      box.className = 'frame-box' + (r.json.code ? '' : ' good');
      lastBox = b;
      hint.textContent = text;
      document.body.dataset.hint = r.json.code || 'ok';
    } catch (e) {
      hint.textContent = T('kiosk.error');
    } finally {
      busy = false;
    }
  }

  // ---- liveness challenge
  const ARROWS = { blink: '\u{1F441}', turn_left: '\u2190', turn_right: '\u2192', look_up: '\u2191' };

  function b64(blob) {
    return new Promise((resolve) => {
      const r = new FileReader();
      r.onload = () => resolve(String(r.result).split(',')[1]);
      r.readAsDataURL(blob);
    });
  }

  async function liveness(subject) {
    const c = await api('POST', '/api/v1/liveness/challenges', JSON.stringify({ subject }), 'application/json');
    if (c.status !== 201) { show('deny', errorText(c.json)); return null; }
    const overlay = $('challenge');
    const actions = c.json.actions;
    const span = Math.max(1, (c.json.deadline_seconds - 0.5) * 1000);
    const per = span / actions.length;
    overlay.hidden = false;
    busy = true;
    const frames = [];
    const t0 = performance.now();
    try {
      while (performance.now() - t0 < span && frames.length < 36) {
        const elapsed = performance.now() - t0;
        const a = actions[Math.min(actions.length - 1, Math.floor(elapsed / per))];
        $('challenge-arrow').textContent = ARROWS[a] || '';
        $('challenge-text').textContent = T('kiosk.do_' + a);
        overlay.dataset.action = a;
        const blob = await grab(true);
        if (blob) frames.push({ t_ms: Math.round(performance.now() - t0), image: await b64(blob) });
        await new Promise((r) => setTimeout(r, 120));
      }
    } finally {
      overlay.hidden = true;
      busy = false;
    }
    hint.textContent = T('kiosk.checking');
    const r = await api('POST', '/api/v1/liveness/challenges/' + encodeURIComponent(c.json.nonce) + '/answer',
      JSON.stringify({ frames }), 'application/json');
    if (r.status === 200 && r.json.pass && r.json.token) return r.json.token;
    show('deny', T('kiosk.liveness_failed'));
    return null;
  }

  // A face request that may need a liveness result first.
  async function withLiveness(subject, send) {
    let r = await send(null);
    if (r.status === 403 && r.json.code === 'liveness_required' && subject) {
      const token = await liveness(subject);
      if (!token) return null;
      r = await send(token);
    }
    return r;
  }

  // ---- check: face (verify or identify), card or PIN, pass
  $('look').addEventListener('click', async () => {
    const subject = $('claim').value.trim();
    const purpose = subject ? 'verification' : 'access';
    const path = subject ? '/api/v1/verify?subject=' + encodeURIComponent(subject) : '/api/v1/identify';
    const blob = needsFace(purpose) ? await grab(false) : null;
    if (needsFace(purpose) && !blob) { show('error', T('kiosk.no_camera')); return; }
    // The voice, when the policy needs it: recorded once, sent with each try.
    const audio = needsVoice(purpose) ? await recordVoice() : null;
    if (needsVoice(purpose) && !audio) return;
    const send = (token) => {
      const extra = token ? { 'X-Consentry-Liveness': token } : null;
      if (!audio) return api('POST', path, blob, 'image/jpeg', extra);
      const form = new FormData();
      if (blob) form.append('image', blob, 'face.jpg');
      form.append('audio', audio, 'voice.wav');
      return api('POST', path, form, null, extra);
    };
    const r = await withLiveness(subject, send);
    if (!r) return;
    if (r.status === 200) show(r.json.decision, T('kiosk.' + r.json.decision));
    else show(r.status === 422 ? 'info' : 'error', errorText(r.json));
  });

  $('cred-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const card = $('card').value.trim(), pin = $('pin').value.trim();
    $('pin').value = '';
    if (!card && !pin) { show('info', T('kiosk.enter_card_or_pin')); return; }
    const body = card ? { card } : { pin };
    const r = await api('POST', '/api/v1/access/decide', JSON.stringify(body), 'application/json');
    if (r.status === 200) show(r.json.decision, T('kiosk.' + r.json.decision));
    else show('error', errorText(r.json));
  });

  $('pass-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const pass = $('pass').value.trim();
    $('pass').value = '';
    if (!pass) return;
    const r = await api('POST', '/api/v1/checkins', JSON.stringify({ pass }), 'application/json');
    if (r.status === 201) show('allow', T('kiosk.allow'));
    else show('deny', errorText(r.json));
  });

  // A camera frame of the pass's QR code: the server reads it, checks the pass in, and drops
  // the frame.
  $('pass-scan').addEventListener('click', async () => {
    const blob = await grab(false);
    if (!blob) { show('error', T('kiosk.no_camera')); return; }
    const r = await api('POST', '/api/v1/checkins', blob, 'image/jpeg');
    if (r.status === 201) show('allow', T('kiosk.allow'));
    else show('deny', errorText(r.json));
  });

  // ---- tabs
  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  function select(tab) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute('aria-controls')).hidden = !on;
    }
  }
  tabs.forEach((t, i) => {
    t.addEventListener('click', () => select(t));
    t.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
        const next = tabs[(i + (ev.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
        select(next); next.focus();
      }
    });
  });
  if (tabs.length) select(tabs[0]);

  // ---- enrolment (operators and admins): consent, capture, done
  if ($('agree')) {
    const consentText = () => {
      const purpose = document.querySelector('input[name="purpose"]:checked').value;
      const days = $('retention').value;
      $('consent-text').textContent = T('kiosk.consent_' + purpose).replace('{0}', days);
    };
    document.querySelectorAll('input[name="purpose"]').forEach((el) => el.addEventListener('change', consentText));
    $('retention').addEventListener('change', consentText);
    consentText();
    const step = (id) => { for (const s of ['consent', 'capture', 'voice', 'done']) $(s).hidden = s !== id; };

    $('agree').addEventListener('click', async () => {
      const purpose = document.querySelector('input[name="purpose"]:checked').value;
      const days = Number($('retention').value);
      const s = await api('POST', '/api/v1/subjects', null, null);
      if (s.status !== 201) { show('error', errorText(s.json)); return; }
      enrolSubject = { id: s.json.id, purpose };
      const c = await api('POST', '/api/v1/subjects/' + s.json.id + '/consents',
        JSON.stringify({ purpose, retention_days: days }), 'application/json');
      if (c.status !== 201) { show('error', errorText(c.json)); return; }
      enrolSubject.receipt = c.json.receipt || c.json;
      step('capture');
      $('take').focus();
    });

    $('take').addEventListener('click', async () => {
      const blob = await grab(false);
      if (!blob || !enrolSubject) return;
      const id = enrolSubject.id;
      const r = await withLiveness(id, (token) => api('POST',
        '/api/v1/subjects/' + id + '/faces?purpose=' + enrolSubject.purpose, blob, 'image/jpeg',
        token ? { 'X-Consentry-Liveness': token } : null));
      if (!r) return;
      if (r.status !== 201) { show('info', errorText(r.json)); return; }
      enrolSubject.token = r.json.subject_token;
      // The voice next, when this purpose's decisions need it.
      if (needsVoice(enrolSubject.purpose)) { step('voice'); $('record-voice').focus(); return; }
      finish();
    });

    $('record-voice').addEventListener('click', async () => {
      if (!enrolSubject) return;
      const audio = await recordVoice();
      if (!audio) return;
      const r = await api('POST', '/api/v1/subjects/' + enrolSubject.id + '/voices?purpose=' +
        enrolSubject.purpose, audio, 'audio/wav');
      if (r.status !== 201) { show('info', errorText(r.json)); return; }
      finish();
    });
    $('skip-voice').addEventListener('click', () => { if (enrolSubject) finish(); });

    // The receipt and the person's token, shown once.
    function finish() {
      const id = enrolSubject.id;
      const rc = enrolSubject.receipt;
      const dl = $('receipt');
      dl.textContent = '';
      const rows = [
        [T('kiosk.receipt_subject'), id],
        [T('kiosk.receipt_consent'), rc.consent_id],
        [T('kiosk.receipt_purpose'), T('kiosk.purpose_' + rc.purpose)],
        [T('kiosk.receipt_retention'), String(rc.retention_days)],
        [T('kiosk.receipt_signature'), rc.signature],
      ];
      for (const [k, v] of rows) {
        const dt = document.createElement('dt'); dt.textContent = k;
        const dd = document.createElement('dd'); dd.textContent = v || '';
        dl.append(dt, dd);
      }
      $('person-token').textContent = enrolSubject.token || T('kiosk.token_already');
      step('done');
      $('next').focus();
      enrolSubject = null;
    }

    $('cancel-enrol').addEventListener('click', async () => {
      if (enrolSubject) await api('DELETE', '/api/v1/subjects/' + enrolSubject.id, null, null);
      enrolSubject = null;
      step('consent');
    });
    $('next').addEventListener('click', () => { $('person-token').textContent = ''; step('consent'); });
  }

  startCamera();
})();
