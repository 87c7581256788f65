"""A small Accord client: REST sign-in, the gateway, and voice over an SFU node (accord-rtp/1).

It is the driver of the end-to-end voice tests and the seed of a bot SDK:

    async with AccordClient.connect(base_url, token="Bearer ...") as client:
        server = await client.join_voice(space_id, channel_id)
        async with VoiceConnection.open(server) as voice:
            await voice.send_frame(payload)
"""
