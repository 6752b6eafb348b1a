// dp_synth documentation: typeset the math with KaTeX (copied into _static/katex), then record on <body> what
// rendered, for the browser test: data-math-rendered (formulas typeset), data-math-errors (formulas KaTeX refused),
// data-images-rendered (images loaded).
document.addEventListener('DOMContentLoaded', function () {
  var main = document.querySelector('main');
  if (window.renderMathInElement && main) {
    renderMathInElement(main, {
      delimiters: [
        {left: '$$', right: '$$', display: true},
        {left: '\\[', right: '\\]', display: true},
        {left: '$', right: '$', display: false},
        {left: '\\(', right: '\\)', display: false}
      ],
      ignoredClasses: ['highlight', 'jp-OutputArea-output'],
      throwOnError: false
    });
  }
  document.body.setAttribute('data-math-rendered', document.querySelectorAll('main .katex').length);
  document.body.setAttribute('data-math-errors', document.querySelectorAll('main .katex-error').length);
});
window.addEventListener('load', function () {
  var n = 0;
  for (const i of document.images) { if (i.complete && i.naturalWidth > 0) n++; }
  document.body.setAttribute('data-images-rendered', n);
});
