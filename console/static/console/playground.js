// The playground: "Add a message" copies the blank row (without the script, the page offers one
// blank row per request, which is enough to add messages one at a time).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var list = document.querySelector("[data-messages]");
    var button = document.querySelector("[data-add-message]");
    if (!list || !button) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var rows = list.querySelectorAll("[data-message]");
      var copy = rows[rows.length - 1].cloneNode(true);
      copy.querySelector("select").value = "user";
      copy.querySelector("textarea").value = "";
      copy.classList.remove("lg-pg-blank");
      list.appendChild(copy);
      copy.querySelector("textarea").focus();
    });
  });
})();
