// The invitations page: a click on a link's field selects all of it; "Copy link" puts the link
// on the clipboard. Handlers live here, not in onclick attributes, which the CSP refuses.

for (const field of document.querySelectorAll("input[data-select-on-click]")) {
  field.addEventListener("click", () => field.select());
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
      button.textContent = "Copied";
    } catch {
      // No clipboard (an insecure origin, or permission refused): the field stays to copy by hand.
      button.textContent = "Select the link to copy it";
    }
  });
}
