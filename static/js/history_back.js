// "Go back" links (data-history-back) step back in the browser's history, where the form the
// visitor sent still holds what they typed; without JavaScript the link goes to its href. A
// javascript: URL would do the same in one attribute, but the CSP refuses those.

for (const link of document.querySelectorAll("a[data-history-back]")) {
  link.addEventListener("click", (event) => {
    if (history.length > 1) {
      event.preventDefault();
      history.back();
    }
  });
}
