// Node's built-in fetch through the proxy: node send.mjs BASE_URL PHONE_ID TEXT (key in PT_KEY).
// Prints the HTTP status and the body on one line each.
const [base, phone, text] = process.argv.slice(2);
const response = await fetch(`${base}/v25.0/${phone}/messages`, {
  method: "POST",
  headers: {
    Authorization: `Bearer ${process.env.PT_KEY}`,
    "Content-Type": "application/json",
  },
  body: JSON.stringify({ messaging_product: "whatsapp", to: "16505551234", text: { body: text } }),
});
console.log(response.status);
console.log(await response.text());
