"""Claude through the Messages API, the only package importing `anthropic`: the client (`client`), the reviewer's
calls (`reviewer`; what they mean is decided SDK-free in `bot.model_run`) and thread answers (`thread`)."""
