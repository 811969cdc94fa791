// WebAuthn ceremonies for forms marked data-webauthn="create" (register a passkey) or
// data-webauthn="get" (sign in with one). The form's data-options holds the server's
// options as JSON, binary values in base64url. On submit this runs
// navigator.credentials.create/get, puts the answer (JSON, binary values base64url) in
// the form's "credential" field and sends the form. With data-autostart the ceremony
// starts when the page loads; the button stays there to try again.
(function () {
  "use strict";

  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeDescriptors(list) {
    (list || []).forEach(function (descriptor) {
      descriptor.id = fromBase64url(descriptor.id);
    });
  }

  function creationOptions(options) {
    var publicKey = options.publicKey;
    publicKey.challenge = fromBase64url(publicKey.challenge);
    publicKey.user.id = fromBase64url(publicKey.user.id);
    decodeDescriptors(publicKey.excludeCredentials);
    return { publicKey: publicKey };
  }

  function requestOptions(options) {
    var publicKey = options.publicKey;
    publicKey.challenge = fromBase64url(publicKey.challenge);
    decodeDescriptors(publicKey.allowCredentials);
    var request = { publicKey: publicKey };
    if (options.mediation) {
      request.mediation = options.mediation;
    }
    return request;
  }

  function encode(credential) {
    var response = credential.response;
    var results = credential.getClientExtensionResults ? credential.getClientExtensionResults() : {};
    var answer = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      extensions: results.credProps ? { credProps: results.credProps } : {},
      response: { clientDataJSON: toBase64url(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      answer.response.attestationObject = toBase64url(response.attestationObject);
      if (response.getTransports) {
        answer.response.transports = response.getTransports();
      }
    } else {
      answer.response.authenticatorData = toBase64url(response.authenticatorData);
      answer.response.signature = toBase64url(response.signature);
      if (response.userHandle && response.userHandle.byteLength > 0) {
        answer.response.userHandle = toBase64url(response.userHandle);
      }
    }
    return JSON.stringify(answer);
  }

  function showError(form, message) {
    var box = document.getElementById("webauthn-error");
    if (!box) {
      box = document.createElement("p");
      box.id = "webauthn-error";
      box.className = "error";
      box.setAttribute("role", "alert");
      form.parentNode.insertBefore(box, form);
    }
    box.textContent = message;
    box.hidden = false;
  }

  function explain(error) {
    if (error && error.name === "NotAllowedError") {
      return "The request was cancelled or timed out. Press the button to try again.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This authenticator is already registered to your account.";
    }
    if (error && error.name === "SecurityError") {
      return "Your browser refused this site's passkey request (WebAuthn needs HTTPS or localhost).";
    }
    return "Your browser could not use a passkey here" + (error && error.message ? ": " + error.message : ".");
  }

  function run(form) {
    if (form.dataset.busy === "1") {
      return;
    }
    if (!window.PublicKeyCredential || !navigator.credentials) {
      showError(form, "This browser does not support passkeys.");
      return;
    }
    var options;
    try {
      options = JSON.parse(form.dataset.options);
    } catch (error) {
      showError(form, "This page is damaged. Reload it and try again.");
      return;
    }
    var mode = form.dataset.webauthn;
    var ceremony = mode === "create"
      ? navigator.credentials.create(creationOptions(options))
      : navigator.credentials.get(requestOptions(options));
    form.dataset.busy = "1";
    ceremony.then(function (credential) {
      if (!credential) {
        throw new Error("no credential");
      }
      form.elements.namedItem("credential").value = encode(credential);
      form.submit();
    }).catch(function (error) {
      form.dataset.busy = "";
      showError(form, explain(error));
    });
  }

  var forms = document.querySelectorAll("form[data-webauthn]");
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      run(form);
    });
    if (form.dataset.autostart === "1") {
      run(form);
    }
  });
})();
