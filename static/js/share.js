// "Copy link" buttons (data-share-url, relative or absolute): the phone's share sheet where
// there is one (touch screens), else the clipboard; the button says when the link is copied.

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-share-url]");
  if (!button) return;
  const url = new URL(button.dataset.shareUrl, window.location.href).href;
  const label = button.dataset.label ?? (button.dataset.label = button.textContent);
  try {
    if (navigator.share && window.matchMedia("(pointer: coarse)").matches) {
      await navigator.share({ title: button.dataset.shareTitle || document.title, url });
      return;
    }
    await navigator.clipboard.writeText(url);
    button.textContent = "Link copied ✓";
  } catch (error) {
    if (error.name === "AbortError") return; // the member closed the share sheet
    button.textContent = url; // no clipboard here: the link to copy by hand
  }
  window.setTimeout(() => { button.textContent = label; }, 2500);
});
