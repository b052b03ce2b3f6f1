// Waveforms are drawn here, once per player, from the compact `data-peaks` the server writes
// (one character per bar, 0..63 of WAVEFORM_ALPHABET: voicetweets/templatetags/voicetweets.py).
// The server thus renders one attribute per waveform instead of markup for every bar.

const WAVEFORM_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
const HEIGHT = 40;

// The bars of `svg` (drawn on the first call), for the players to mark the played ones.
export function drawWaveform(svg) {
  if (!svg.dataset.drawn) {
    const code = svg.dataset.peaks || "";
    const top = WAVEFORM_ALPHABET.length - 1;
    const bars = [];
    for (let index = 0; index < code.length; index += 1) {
      const level = Math.max(0, WAVEFORM_ALPHABET.indexOf(code[index])) / top;
      const height = Math.max(1, level * HEIGHT);
      bars.push(`<rect x="${index * 3}" y="${((HEIGHT - height) / 2).toFixed(2)}" width="2" height="${height.toFixed(2)}" rx="1"/>`);
    }
    svg.innerHTML = bars.join("");
    svg.dataset.drawn = "1";
  }
  return [...svg.querySelectorAll("rect")];
}
